// The public Azure regions a policy may name, with the ISO 3166-1 alpha-2 country each one is in.

/** Region name (as `az account list-locations` spells it) → ISO 3166-1 alpha-2 country code. */
export const AZURE_REGION_COUNTRY = {
  australiacentral: 'AU',
  australiacentral2: 'AU',
  australiaeast: 'AU',
  australiasoutheast: 'AU',
  austriaeast: 'AT',
  belgiumcentral: 'BE',
  brazilsouth: 'BR',
  brazilsoutheast: 'BR',
  canadacentral: 'CA',
  canadaeast: 'CA',
  centralindia: 'IN',
  centralus: 'US',
  chilecentral: 'CL',
  eastasia: 'HK',
  eastus: 'US',
  eastus2: 'US',
  francecentral: 'FR',
  francesouth: 'FR',
  germanynorth: 'DE',
  germanywestcentral: 'DE',
  indonesiacentral: 'ID',
  israelcentral: 'IL',
  italynorth: 'IT',
  japaneast: 'JP',
  japanwest: 'JP',
  jioindiacentral: 'IN',
  jioindiawest: 'IN',
  koreacentral: 'KR',
  koreasouth: 'KR',
  malaysiawest: 'MY',
  mexicocentral: 'MX',
  newzealandnorth: 'NZ',
  northcentralus: 'US',
  northeurope: 'IE',
  norwayeast: 'NO',
  norwaywest: 'NO',
  polandcentral: 'PL',
  qatarcentral: 'QA',
  southafricanorth: 'ZA',
  southafricawest: 'ZA',
  southcentralus: 'US',
  southeastasia: 'SG',
  southindia: 'IN',
  spaincentral: 'ES',
  swedencentral: 'SE',
  swedensouth: 'SE',
  switzerlandnorth: 'CH',
  switzerlandwest: 'CH',
  uaecentral: 'AE',
  uaenorth: 'AE',
  uksouth: 'GB',
  ukwest: 'GB',
  westcentralus: 'US',
  westeurope: 'NL',
  westindia: 'IN',
  westus: 'US',
  westus2: 'US',
  westus3: 'US',
} as const;

export type AzureRegion = keyof typeof AZURE_REGION_COUNTRY;

export const AZURE_REGIONS = Object.keys(AZURE_REGION_COUNTRY).sort() as AzureRegion[];

/** The pseudo-region of a sink outside the policy region; it may receive de-identified aggregates only. */
export const CENTRAL = 'central';

export function countryOf(region: AzureRegion): string {
  return AZURE_REGION_COUNTRY[region];
}
